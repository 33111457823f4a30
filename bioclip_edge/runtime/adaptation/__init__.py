"""A site's own label rows from a few labelled frames (``labels adapt``): reading and embedding the
examples, the fitting methods, cross-validation, and which frames to label next.

It sits above ``labels`` (it writes label matrices), ``jobs`` (bursts are grouped as classify groups
sequences) and ``preview`` (the suggestion page), so none of those needs to know about it.
"""
