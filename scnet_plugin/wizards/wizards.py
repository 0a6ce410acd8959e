"""SC-Net wizards: patch size suggestion from tomogram dimensions and available memory."""

# Peak training memory model (rough, CPU or GPU): activations dominate. The U-Net-like SC-Net keeps
# about ACT_MAPS feature maps of base_width channels at full patch resolution (encoder + decoder +
# gradients; deeper levels add < 1/7 more), float32 (4 bytes), times a safety FACTOR for autograd
# buffers / allocator overhead, plus a fixed OVERHEAD_GB for the framework and weights.
ACT_MAPS = 24
BYTES = 4
FACTOR = 2.0
OVERHEAD_GB = 0.5


def estimate_peak_memory_gb(patch, batch, base_width):
    """Estimated training peak memory (GB) ~= batch * patch^3 * base_width * ACT_MAPS * BYTES * FACTOR + OVERHEAD."""
    return batch * patch ** 3 * base_width * ACT_MAPS * BYTES * FACTOR / 1024 ** 3 + OVERHEAD_GB


def suggest_patch_size(dims, mem_gb, batch, base_width, maximum=128, step=16):
    """Largest multiple of `step`, <= min(dims) and <= maximum, whose estimated peak fits in mem_gb
    (at least `step`)."""
    top = min(min(int(d) for d in dims), maximum)
    p = max(step, top - top % step)
    while p > step and estimate_peak_memory_gb(p, batch, base_width) > mem_gb:
        p -= step
    return p


try:
    from pwem.wizards import EmWizard

    class SCNetPatchSizeWizard(EmWizard):
        """Suggests ProtSCNetTrain.patchSize from the input tomograms and the available memory."""
        from scnet_plugin.protocols import ProtSCNetTrain
        _targets = [(ProtSCNetTrain, ["patchSize"])]

        def show(self, form, *args):
            from pyworkflow.gui.dialog import showInfo, showWarning
            prot = form.protocol
            tomos = prot.inputTomograms.get()
            if tomos is None or tomos.getSize() == 0:
                showWarning("SC-Net patch size", "Select the input tomograms first.", form.root)
                return
            dims = [min(t.getDim()) for t in tomos.iterItems()]
            x, y, z = tomos.getFirstItem().getDim()
            dims = (x, y, z, min(dims))
            try:
                import psutil
                mem = psutil.virtual_memory().available / 1024 ** 3
            except ImportError:
                mem = 8.0
            batch = prot.batchSize.get() or 2
            width = prot.baseWidth.get() if hasattr(prot, "baseWidth") else 8
            p = suggest_patch_size(dims, mem, batch, width)
            form.setVar("patchSize", p)
            showInfo("SC-Net patch size",
                     f"Suggested patch size: {p} (min tomogram dimension {min(dims)}, batch {batch}, "
                     f"base width {width}).\nEstimated training peak: "
                     f"{estimate_peak_memory_gb(p, batch, width):.1f} GB of {mem:.1f} GB available.",
                     form.root)
except ImportError:  # pragma: no cover - pwem missing (pure functions stay usable)
    pass
