"""captum-ext: research attribution methods and metrics for image classifiers, as Captum plugins."""

__version__ = "0.1.0"

__all__ = ["__version__"]
