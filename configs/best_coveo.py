# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/best_coveo.py
#
# Best published setting for coveo (shared embedding, 2048 extra negatives, 10 epochs).
# Published test result with it: Recall@20 / MRR@20 = 0.3135 / 0.1010.
# Data: the train_full / test split of coveo made with the RecSys 2023 protocol.
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'bpr-max'),
    ('final_act', 'elu-1.0'),
    ('constrained_embedding', True),
    ('embedding', 0),
    ('layers', [512]),
    ('n_epochs', 10),
    ('batch_size', 144),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.35),
    ('dropout_p_hidden', 0.0),
    ('learning_rate', 0.05),
    ('momentum', 0.4),
    ('sample_alpha', 0.2),
    ('bpreg', 1.85),
])
