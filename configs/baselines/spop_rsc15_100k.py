# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/spop_rsc15_100k.py
#
# S-Pop with GRU4Rec's default (baselines.py): the session's items, then the 100 most popular;
# session-rec's rsc15 configurations do not use it.
from collections import OrderedDict

model = 'spop'
params = OrderedDict([
    ('top_n', 100),
])
