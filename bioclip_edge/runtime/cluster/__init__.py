"""The same classify and embed jobs on a Ray cluster (``--engine ray``), through Ray Data.

Why Ray Data: it streams a dataset through a pool of actors that each load the model once,
retries tasks whose worker died, and reads and writes Parquet and cloud storage; so a
camera-trap archive of millions of frames runs on many machines without splitting folders by
hand. What it does not change: the job (``runtime.jobs``) keeps its checkpoint, resume,
fingerprint and writers; only where records are *produced* moves (``engine.RayEngine``).

* ``options``: ``RayOptions``, the cluster request (address, actors, CPUs per actor);
* ``connect``: start or join Ray, quietly, with clear errors before any work;
* ``preflight``: every node sees the bundle, the label file and the images;
* ``workers``: the actor classes (one model per actor) Ray Data runs;
* ``datasets``: the public functions for people with their own Ray pipelines;
* ``engine``: the producer the jobs call on the driver.

``ray`` is imported only inside functions: ``--help`` and the local engine never load it.
"""
