"""Data: stamped images built from scikit-image's photos, and the small stamp classifier."""
