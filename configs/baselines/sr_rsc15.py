# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/sr_rsc15.py
#
# Sequential rules, session-rec's optimum for the rsc15 window experiments
# (window_rsc15_baselines.yml, the published optimum).
from collections import OrderedDict

model = 'sr'
params = OrderedDict([
    ('steps', 8),
    ('weighting', 'div'),
    ('pruning', 20),
])
