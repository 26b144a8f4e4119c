# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/vsknn_rsc15_100k.py
#
# V-SKNN, session-rec's rsc15-100k setting (conf/example_next.yml).
from collections import OrderedDict

model = 'vsknn'
params = OrderedDict([
    ('k', 500),
    ('sample_size', 5000),
    ('weighting', 'quadratic'),
    ('weighting_score', 'div'),
    ('idf_weighting', 5),
])
