"""``volsam serve``: a multi-user HTTP server over :class:`volsam.Session` (FastAPI), and its web page.

Every endpoint is a thin layer over a Session method; no segmentation logic lives here.
"""
