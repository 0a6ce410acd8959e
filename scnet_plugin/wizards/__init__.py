from .wizards import estimate_peak_memory_gb, suggest_patch_size  # noqa: F401
try:
    from .wizards import SCNetPatchSizeWizard  # noqa: F401
except ImportError:  # pragma: no cover
    pass
