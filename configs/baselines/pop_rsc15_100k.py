# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/pop_rsc15_100k.py
#
# Pop with GRU4Rec's default (baselines.py): the 100 most popular items by events; session-rec's
# rsc15 configurations do not use it.
from collections import OrderedDict

model = 'pop'
params = OrderedDict([
    ('top_n', 100),
    ('support_by_key', None),
])
