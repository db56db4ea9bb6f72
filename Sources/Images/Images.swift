// Image decoding (JPEG, PNG) and torchvision preprocessing.
