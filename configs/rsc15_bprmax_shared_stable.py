# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/rsc15_bprmax_shared_stable.py
#
# configs/rsc15_bprmax_shared.py with Adagrad's accumulator starting at 1e-5 instead of 0
# (adagrad_init): the first updates are damped instead of moving every weight by the
# full learning rate. bpr-max with ELU(0.5) output and the shared (constrained) embedding.
# Not readable by the original implementations (adagrad_init is this package's).
#
# Measured (benchmarks/stability.py, seeds 1-5, conservative ties, 2-core CPU),
# Recall@20 mean (min-max) / MRR@20 mean:
#   data                          adagrad_init 0                       this preset
#   yoochoose100k, 10 epochs      0.5719 (0.5392-0.5884) / 0.2839      0.6065 (0.6033-0.6090) / 0.3090
#   synthetic 1M events, 1 epoch  0.6333 (0.6229-0.6390) / 0.4284      0.6710 (0.6693-0.6730) / 0.4520
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'bpr-max'),
    ('final_act', 'elu-0.5'),
    ('constrained_embedding', True),
    ('embedding', 0),
    ('layers', [100]),
    ('n_epochs', 10),
    ('batch_size', 32),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.0),
    ('dropout_p_hidden', 0.0),
    ('learning_rate', 0.2),
    ('momentum', 0.1),
    ('sample_alpha', 0.0),
    ('bpreg', 0.5),
    ('adagrad_init', 1e-5),
])
