"""Objects, not only pixels: instance labels (one id per object, beside the class labels), how
touching objects are separated, and per-object measurements (scikit-image's regionprops_table)."""
