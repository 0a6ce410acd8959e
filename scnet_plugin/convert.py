"""The plugin's file conversions between Scipion's tilt series and the engine's files (as scipion-em-imod
keeps its formats in ``convert``): the tilt images as a stack (a link, or a re-stack without excluded
views), their transforms as an IMOD .xf, their angles as a .tlt, a stack rotated by +/-90 deg.

The protocols call these; the numerics of an alignment stay in the engine (``scnet align``).
"""
import os

from pyworkflow.utils.path import createAbsLink


def presentViews(ts):
    """The acquisition orders of the views to use (None: all of them, none excluded)."""
    return ts.getTsPresentAcqOrders() if ts.hasExcludedViews() else None


def writeTlt(ts, path, present=None):
    """The tilt angles of the used views, one per line, stack order (IMOD .tlt)."""
    ts.generateTltFile(path, presentAcqOrders=present)
    return path


def readTlt(path):
    """The angles of a .tlt file, as the engine reads them (one number per line, checked)."""
    from scnet.tiltseries import read_angles
    return [float(a) for a in read_angles(path)]


def writeXf(ts, path):
    """The used views' transformation matrices as an IMOD .xf (stack order): the alignment the engine applies."""
    from scnet.align import write_xf
    write_xf(path, [ti.getTransform().getMatrix()[:2] for ti in ts.iterItems(orderBy="_index") if ti.isEnabled()])
    return path


def exportImages(ts, path, present=None):
    """The tilt images as they are: a link to the imported stack, or a re-stack without excluded views."""
    src = os.path.abspath(ts.getFirstEnabledItem().getFileName())
    if present:
        ts.reStack(src, path, present)
    else:
        createAbsLink(src, path)
    return path


def rotateStack(path, degrees):
    """Rotate every image of an MRC stack by +/-90 deg (counter-clockwise > 0, y up as displayed), keeping
    the voxel size (X and Y swapped). Exact (np.rot90): a re-indexing, no resampling. The file at ``path``
    is replaced (a link to the imported stack is replaced by the rotated copy; the stack itself is never
    written)."""
    import mrcfile
    import numpy as np
    with mrcfile.open(path, permissive=True) as mrc:
        data, voxel = np.asarray(mrc.data), mrc.voxel_size.copy()
    rotated = np.ascontiguousarray(np.rot90(data, 1 if degrees > 0 else -1, axes=(2, 1)))
    tmp = path + ".rotated.mrcs"
    with mrcfile.new(tmp, overwrite=True) as mrc:
        mrc.set_data(rotated)
        mrc.voxel_size = (voxel.y, voxel.x, voxel.z)
    os.replace(tmp, path)
