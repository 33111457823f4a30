"""Camtrap DP 1.0.2 data packages (the TDWG standard GBIF takes camera-trap data in) from classify outputs.

``write_camtrap_dp(CamtrapRequest(...)) -> CamtrapResult`` is what ``bioclip-edge camtrap-dp`` runs.
"""

from bioclip_edge.runtime.camtrap.package import CamtrapRequest, CamtrapResult, write_camtrap_dp

__all__ = ["CamtrapRequest", "CamtrapResult", "write_camtrap_dp"]
