# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/sknn_rsc15.py
#
# Session kNN, session-rec's optimum for the rsc15 window experiments
# (window_rsc15_baselines.yml, the published optimum).
from collections import OrderedDict

model = 'sknn'
params = OrderedDict([
    ('k', 500),
    ('sample_size', 10000),
    ('similarity', 'jaccard'),
])
