include!(concat!(env!("OUT_DIR"), "/nb_theory.rs"));
