# The default GAN for a short target clip (about 80 frames with a person): on so few frames the network learns
# the frames themselves and loses the person in a stranger's poses; random zooms, shifts and turns of pose, picture
# and memory together make it lose him less often, for a little SSIM (RESULTS.md, "Augmentation on the short
# clip").
#   python src/GenGAN.py --recipe config/short_clip.py --target short.mp4
time_budget = 30  # minutes
augment = True
