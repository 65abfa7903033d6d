"""Reporting: everything a person looks at, made from Run records.

Figures (``plots``: curves, confusion matrix, results chart; ``image_plots``:
sample images and feature maps), the comparison table (``compare``), the HTML
report (``report``) and the 10-slide deck (``slides``), sharing their HTML
parts (``_parts``), the names people read (``naming``) and the findings the
deck concludes with (``story``). Reads runs and models; nothing below imports it.
"""
