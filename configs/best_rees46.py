# gru4rec run train_full.txt -t test.txt -m 1 5 10 20 -e conservative -pf configs/best_rees46.py
#
# Best published setting for rees46 (shared embedding, 2048 extra negatives, 10 epochs).
# Published test result with it: Recall@20 / MRR@20 = 0.5293 / 0.2008.
# Data: the train_full / test split of rees46 made with the RecSys 2023 protocol.
from collections import OrderedDict

gru4rec_params = OrderedDict([
    ('loss', 'cross-entropy'),
    ('final_act', 'softmax'),
    ('constrained_embedding', True),
    ('embedding', 0),
    ('layers', [512]),
    ('n_epochs', 10),
    ('batch_size', 240),
    ('adapt', 'adagrad'),
    ('n_sample', 2048),
    ('dropout_p_embed', 0.45),
    ('dropout_p_hidden', 0.0),
    ('learning_rate', 0.065),
    ('momentum', 0.0),
    ('sample_alpha', 0.5),
    ('logq', 1.0),
])
