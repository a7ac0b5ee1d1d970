"""The VolSAM module's logic, importable without Qt (Slicer's MRML and logic libraries, numpy, vtk and the
standard library only): :mod:`.logic` (VolSAMLogic), :mod:`.remote` (HTTP), :mod:`.nrrd` (uploads)."""
