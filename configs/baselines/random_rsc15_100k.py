# gru4rec run train_full.txt -t test.txt -m 5 10 20 -e conservative -pf configs/baselines/random_rsc15_100k.py
#
# Uniform random scores (GRU4Rec's baselines.py): the floor every model must beat.
from collections import OrderedDict

model = 'random'
params = OrderedDict([])
