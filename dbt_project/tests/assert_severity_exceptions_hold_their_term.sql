{#- Every exception word holds its keyword exactly once (the count in
    int_feedback__keyword_hits relies on it) and the keyword is a safety rule. -#}
select
    exceptions.term,
    exceptions.within
from {{ ref('severity_term_exceptions') }} as exceptions
left join {{ ref('severity_rules') }} as rules
    on rules.kind = 'keyword' and lower(rules.value) = lower(exceptions.term)
where
    rules.rule is null
    or length(exceptions.within) - length(replace(exceptions.within, exceptions.term, ''))
    != length(exceptions.term)
