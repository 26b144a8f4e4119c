# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/best_diginetica.py
#
# Best published setting for diginetica (shared embedding, 2048 extra negatives, 10 epochs).
# Published test result with it: Recall@20 / MRR@20 = 0.4995 / 0.1542.
# Data: the train_full / test split of diginetica made with the RecSys 2023 protocol.
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'bpr-max'),
    ('final_act', 'elu-1.0'),
    ('constrained_embedding', True),
    ('embedding', 0),
    ('layers', [512]),
    ('n_epochs', 10),
    ('batch_size', 128),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.5),
    ('dropout_p_hidden', 0.3),
    ('learning_rate', 0.05),
    ('momentum', 0.15),
    ('sample_alpha', 0.3),
    ('bpreg', 0.9),
])
