# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/sr_rsc15_100k.py
#
# Sequential rules, session-rec's rsc15-100k setting (conf/example_next.yml).
from collections import OrderedDict

model = 'sr'
params = OrderedDict([
    ('steps', 20),
    ('weighting', 'quadratic'),
    ('pruning', 20),
])
