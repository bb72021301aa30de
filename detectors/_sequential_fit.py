"""Run-length fits of ADWIN and Page-Hinkley on stable input (generated file).

Written by ``python -m benchmarks.calibrate_sequential``; do not edit by hand.
"""

from typing import Final

# Simulated (40,000,000 values per row; ADWIN is fitted on the shorter run
# length of the two inputs at each delta):
#   adwin         0.5    uniform     40,000,000 values     3,369 alarms
#   adwin         0.3    uniform     40,000,000 values     1,675 alarms
#   adwin         0.2    uniform     40,000,000 values       941 alarms
#   adwin         0.1    uniform     40,000,000 values       306 alarms
#   adwin         0.05   uniform     40,000,000 values       135 alarms
#   adwin         0.02   uniform     40,000,000 values        39 alarms
#   adwin         0.5    bernoulli   40,000,000 values     5,692 alarms
#   adwin         0.3    bernoulli   40,000,000 values     2,747 alarms
#   adwin         0.2    bernoulli   40,000,000 values     1,645 alarms
#   adwin         0.1    bernoulli   40,000,000 values       679 alarms
#   adwin         0.05   bernoulli   40,000,000 values       268 alarms
#   adwin         0.02   bernoulli   40,000,000 values        67 alarms
#   page_hinkley  5      uniform     40,000,000 values    57,597 alarms
#   page_hinkley  6      uniform     40,000,000 values    19,678 alarms
#   page_hinkley  7      uniform     40,000,000 values     6,332 alarms
#   page_hinkley  8      uniform     40,000,000 values     2,056 alarms
#   page_hinkley  9      uniform     40,000,000 values       721 alarms
#   page_hinkley  10     uniform     40,000,000 values       255 alarms
#   page_hinkley  11     uniform     40,000,000 values        64 alarms

#: ADWIN: ln ARL = a + b ln(1/delta).
ADWIN_FIT: Final = (7.904673226454083, 1.3612928491829384)
#: Page-Hinkley, delta 0.5, standardised uniform values: ln ARL = c + theta lambda.
PAGE_HINKLEY_FIT: Final = (0.9251543362056964, 1.1168480824340825)
