# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/rsc15_bprmax.py
#
# The RSC15 setting of the GRU4Rec papers: 100 units, batch 32, Adagrad, 10 epochs,
# 2048 extra negatives.
# bpr-max with ELU(0.5) output, one-hot input (no embedding).
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'bpr-max'),
    ('final_act', 'elu-0.5'),
    ('constrained_embedding', False),
    ('embedding', 0),
    ('layers', [100]),
    ('n_epochs', 10),
    ('batch_size', 32),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.0),
    ('dropout_p_hidden', 0.0),
    ('learning_rate', 0.2),
    ('momentum', 0.3),
    ('sample_alpha', 0.0),
    ('bpreg', 1.0),
])
