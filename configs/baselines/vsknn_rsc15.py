# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/vsknn_rsc15.py
#
# V-SKNN, session-rec's optimum for the rsc15 window experiments
# (window_rsc15_baselines.yml, the published optimum).
from collections import OrderedDict

model = 'vsknn'
params = OrderedDict([
    ('k', 100),
    ('sample_size', 1000),
    ('weighting', 'quadratic'),
    ('weighting_score', 'quadratic'),
    ('idf_weighting', False),
])
