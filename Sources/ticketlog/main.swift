import Ticketlog
import ArgumentParser
print("x")
