# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/best_rsc15.py
#
# Best published setting for RSC15 (shared embedding, 2048 extra negatives, 10 epochs).
# Published test result with it: Recall@20 / MRR@20 = 0.7283 / 0.3205.
# Data: the train_full / test split of rsc15 made with the original GRU4Rec protocol.
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
    ('dropout_p_embed', 0.1),
    ('dropout_p_hidden', 0.0),
    ('learning_rate', 0.1),
    ('momentum', 0.0),
    ('sample_alpha', 0.75),
    ('logq', 1.0),
])
