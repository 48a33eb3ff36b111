error("the script stops here") --!
