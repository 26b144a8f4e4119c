# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/markov_rsc15_100k.py
#
# First-order Markov with session-rec's code defaults (its rsc15 configurations use {}).
from collections import OrderedDict

model = 'markov'
params = OrderedDict([
    ('pruning', 20),
])
