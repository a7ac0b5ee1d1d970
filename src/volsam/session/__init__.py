"""Interactive sessions: several objects, corrections on any slice, undo / redo, resume (see
:class:`volsam.session.session.Session`)."""

from volsam.session.session import OVERLAP_POLICIES, Session
from volsam.session.state import Change

__all__ = ["OVERLAP_POLICIES", "Change", "Session"]
