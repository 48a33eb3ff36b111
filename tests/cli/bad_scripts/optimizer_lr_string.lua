local o = nn.SGD { learning_rate = "0.1" } --!
