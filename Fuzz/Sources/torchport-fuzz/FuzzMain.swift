// Placeholder: the fuzz entry points are being written.
print("torchport-fuzz")
