# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/sknn_rsc15_100k.py
#
# Session kNN, session-rec's rsc15-100k setting (conf/example_next.yml).
from collections import OrderedDict

model = 'sknn'
params = OrderedDict([
    ('k', 100),
    ('sample_size', 500),
    ('similarity', 'cosine'),
])
