# The default GAN given half an hour: the recipe behind the README's results table (RESULTS.md has every run).
#   python src/GenGAN.py --recipe config/gan_30min.py --target target.mp4
# Every other setting is the settled default (src/Checkpoints.py, DEFAULTS).
time_budget = 30  # minutes; as many epochs as fit in them
