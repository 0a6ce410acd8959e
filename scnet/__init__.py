"""scnet: the SC-Net engine (Yang, Zhang, Han, ICCV 2021).

Self-supervised denoising of ONE cryo-ET tomogram: a 3D U-Net with an
up-sampling block, trained with a volumetric blind spot and guided by a
"smoothed" prior tomogram reconstructed from Topaz-filtered tilt images.

This package is numpy/torch only and never imports Scipion
(pyworkflow / pwem / tomo); the plugin ``scnet_plugin`` drives it
through the ``scnet`` command line.
"""

__version__ = "0.1.0"
