# Follows: kan-bayashi/ParallelWaveGAN#177 ("set_epoch on DataLoader is needed for distributed training")
