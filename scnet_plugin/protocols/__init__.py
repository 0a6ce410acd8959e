"""SC-Net protocols (one file each; see README)."""
from .protocol_base import ProtSCNetBase
from .protocol_prepare import ProtSCNetPrepareTomograms
from .protocol_train import ProtSCNetTrain
from .protocol_load_model import ProtSCNetLoadModel
from .protocol_denoise import ProtSCNetDenoise
from .protocol_fsc_eo import ProtSCNetFscEo
from .protocol_evaluate import ProtSCNetEvaluate
from .protocol_simulate import ProtSCNetSimulate
from .protocol_halves import ProtSCNetAssignHalves
from .protocol_import_alignment import ProtSCNetImportAlignment
