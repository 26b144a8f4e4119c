# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/rsc15_xe_logq_shared_stable.py
#
# configs/rsc15_xe_logq_shared.py with Adagrad's accumulator starting at 1e-4 instead of 0
# (adagrad_init): the first updates are damped instead of moving every weight by the
# full learning rate. Cross-entropy with logQ correction and the shared embedding.
# Not readable by the original implementations (adagrad_init is this package's).
#
# Measured (benchmarks/stability.py, seeds 1-5, conservative ties, 2-core CPU),
# Recall@20 mean (min-max) / MRR@20 mean:
#   data                          adagrad_init 0                       this preset
#   yoochoose100k, 10 epochs      0.6810 (0.6783-0.6826) / 0.3630      0.6873 (0.6841-0.6894) / 0.3647
#   synthetic 1M events, 1 epoch  0.6311 (0.6291-0.6348) / 0.4144      0.6610 (0.6607-0.6612) / 0.4326
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'cross-entropy'),
    ('final_act', 'softmax'),
    ('constrained_embedding', True),
    ('embedding', 0),
    ('layers', [100]),
    ('n_epochs', 10),
    ('batch_size', 32),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.0),
    ('dropout_p_hidden', 0.4),
    ('learning_rate', 0.2),
    ('momentum', 0.2),
    ('sample_alpha', 0.5),
    ('logq', 1.0),
    ('adagrad_init', 1e-4),
])
