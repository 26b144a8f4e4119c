# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/rsc15_xe_logq_shared_b64_stable.py
#
# configs/rsc15_xe_logq_shared_b64.py with Adagrad's accumulator starting at 1e-5 instead of 0
# (adagrad_init): the first updates are damped instead of moving every weight by the
# full learning rate. Cross-entropy with logQ correction and the shared embedding, batch size 64.
# Not readable by the original implementations (adagrad_init is this package's).
#
# Measured (benchmarks/stability.py, seeds 1-5, conservative ties, 2-core CPU),
# Recall@20 mean (min-max) / MRR@20 mean:
#   data                          adagrad_init 0                       this preset
#   yoochoose100k, 10 epochs      0.6826 (0.6818-0.6838) / 0.3634      0.6865 (0.6809-0.6887) / 0.3645
#   synthetic 1M events, 1 epoch  0.6416 (0.6406-0.6423) / 0.4216      0.6526 (0.6516-0.6533) / 0.4275
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'cross-entropy'),
    ('final_act', 'softmax'),
    ('constrained_embedding', True),
    ('embedding', 0),
    ('layers', [100]),
    ('n_epochs', 10),
    ('batch_size', 64),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.0),
    ('dropout_p_hidden', 0.4),
    ('learning_rate', 0.2),
    ('momentum', 0.2),
    ('sample_alpha', 0.5),
    ('logq', 1.0),
    ('adagrad_init', 1e-5),
])
