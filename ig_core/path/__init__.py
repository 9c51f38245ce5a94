"""The straight-line path from the baseline to the input: its quadrature rules, the options of its scan, the scan
that records every point, the adaptive rule that refines it, and the store that keeps the refined points'
gradients off the device until their weights are known."""
