"""Archives of old history: compressed, signed segments, and the one audited path that deletes.

``segment`` writes and reads the compressed files, ``manifest`` the signed manifests,
``storage`` where both are kept; ``selection`` picks what a run archives, ``run`` archives
(segment first, verified, then one transaction records the manifest and deletes),
``restore`` brings a segment back, ``verify`` checks segments against the database. See
docs/lifecycle.md.
"""
