# The GAN that `make demo` trains on the built-in sample (80 training frames): enough to show the pipeline at work on
# a CPU in about a minute, not to look good. Why each setting: RESULTS.md, "Built-in sample".
#   python src/GenGAN.py --recipe config/demo_gan.py --target data/sample/pose2sim_cam02.mp4
size = 256               # the remembered person survives the video better than one made at 128 px and enlarged
batch_size = 4
epochs = 2               # a fixed number, so that a slower machine trains no less
time_budget = 1.5        # minutes: only a guard for a very slow machine
ngf = 16                 # the network ends up trusting the memory nearly everywhere: a narrow one shows as much
trust_weight = 0.2       # on 80 frames the GAN soon learns to redraw the remembered person as a blur: price it more
trust_region = "frame"   # over the whole frame
ssim_weight = 0.0        # and without the SSIM term
