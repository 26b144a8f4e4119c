# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/ar_rsc15_100k.py
#
# Association rules, session-rec's rsc15-100k setting (conf/example_next.yml: {}, the code
# defaults).
from collections import OrderedDict

model = 'ar'
params = OrderedDict([
    ('pruning', 20),
])
