# The vanilla networks that `make demo GEN_TYPE=2` and `GEN_TYPE=3` train on the built-in sample: two minutes at
# 128 px (a slower machine trains fewer epochs), to show the pipeline, not to look good.
#   python src/GenVanillaNN.py --variant 2 --recipe config/demo_vanilla.py --target data/sample/pose2sim_cam02.mp4
size = 128
batch_size = 4
epochs = 200
time_budget = 2  # minutes
