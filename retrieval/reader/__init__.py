"""The extractive reader: serving code here, training code in train.py / training_data.py."""
