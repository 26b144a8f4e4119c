# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/itemknn_rsc15_100k.py
#
# Item-KNN with GRU4Rec's defaults (baselines.py); session-rec's rsc15 configurations do not
# use it.
from collections import OrderedDict

model = 'itemknn'
params = OrderedDict([
    ('n_sims', 100),
    ('lmbd', 20),
    ('alpha', 0.5),
])
