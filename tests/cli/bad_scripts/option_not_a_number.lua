local epochs = nnc.option("epochs", 1) --!
