# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/best_retailrocket.py
#
# Best published setting for retailrocket (shared embedding, 2048 extra negatives, 10 epochs).
# Published test result with it: Recall@20 / MRR@20 = 0.5186 / 0.2175.
# Data: the train_full / test split of retailrocket made with the RecSys 2023 protocol.
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'bpr-max'),
    ('final_act', 'elu-0.5'),
    ('constrained_embedding', True),
    ('embedding', 0),
    ('layers', [224]),
    ('n_epochs', 10),
    ('batch_size', 80),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.5),
    ('dropout_p_hidden', 0.05),
    ('learning_rate', 0.05),
    ('momentum', 0.4),
    ('sample_alpha', 0.4),
    ('bpreg', 1.95),
])
