# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/bprmf_rsc15_100k.py
#
# BPR-MF with GRU4Rec's defaults (baselines.py); session-rec's rsc15 configurations do not use
# it. batch_size and item_bias are this package's (see gru4rec.baselines.bprmf).
from collections import OrderedDict

model = 'bprmf'
params = OrderedDict([
    ('n_factors', 100),
    ('n_iterations', 10),
    ('learning_rate', 0.01),
    ('lambda_session', 0.0),
    ('lambda_item', 0.0),
    ('sigma', 0.05),
    ('init_normal', False),
])
