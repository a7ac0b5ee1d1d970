"""File-level jobs: read inputs, segment, write outputs. The command line and the server build a
:class:`SegmentRequest` and call one of these:

* :mod:`volsam.jobs.volume` -- :func:`segment_file` (one object), :func:`segment_file_with_prompts` (a
  prompts file in a session).
* :mod:`volsam.jobs.video` -- :func:`segment_video` (a video or DICOM cine, streamed).
* :mod:`volsam.jobs.demo` -- :func:`run_demo` (the demo case).
"""

from volsam.jobs.request import SegmentRequest

__all__ = ["SegmentRequest"]
