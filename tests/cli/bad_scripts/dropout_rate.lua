local d = nn.Dropout(1.5) --!
